// formcheck web app: drag and drop into the upload form, and status polling. No library.
(function () {
  "use strict";
  var form = document.getElementById("upload");
  if (form) {
    var input = form.querySelector("input[type=file]");
    var drop = document.getElementById("drop");
    var chosen = document.getElementById("chosen");
    var error = document.getElementById("client-error");
    var max = Number(form.dataset.maxBytes);
    var check = function () {
      chosen.textContent = "";
      var total = 0;
      Array.prototype.forEach.call(input.files, function (f) {
        total += f.size;
        var li = document.createElement("li");
        li.textContent = f.name + " (" + (f.size / 1e6).toFixed(1) + " MB)";
        chosen.appendChild(li);
      });
      var ok = total <= max;
      error.hidden = ok;
      if (!ok) {
        error.textContent = "Too large: " + (total / 1048576).toFixed(0) + " MB; the limit is " +
          (max / 1048576).toFixed(0) + " MB per upload.";
      }
      return ok;
    };
    input.addEventListener("change", check);
    ["dragenter", "dragover"].forEach(function (name) {
      drop.addEventListener(name, function (ev) { ev.preventDefault(); drop.classList.add("over"); });
    });
    ["dragleave", "drop"].forEach(function (name) {
      drop.addEventListener(name, function (ev) { ev.preventDefault(); drop.classList.remove("over"); });
    });
    drop.addEventListener("drop", function (ev) {
      if (ev.dataTransfer && ev.dataTransfer.files.length) { input.files = ev.dataTransfer.files; check(); }
    });
    form.addEventListener("submit", function (ev) {
      if (!check()) { ev.preventDefault(); return; }
      var button = form.querySelector("button[type=submit]");
      var bar = document.getElementById("upload-progress");
      if (!window.XMLHttpRequest || !window.FormData || !bar) {
        button.textContent = "Uploading...";
        return;  // a plain form post, without progress
      }
      ev.preventDefault();
      var xhr = new XMLHttpRequest();
      button.disabled = true;
      bar.hidden = false;
      xhr.upload.addEventListener("progress", function (p) {
        if (p.lengthComputable) {
          bar.value = p.loaded / p.total;
          button.textContent = "Uploading " + Math.round(100 * p.loaded / p.total) + "%";
        }
      });
      xhr.addEventListener("load", function () {
        // the server's answer is a whole page (the clips filed, or why not): show it
        document.open();
        document.write(xhr.responseText);
        document.close();
      });
      xhr.addEventListener("error", function () {
        bar.hidden = true;
        button.disabled = false;
        button.textContent = "Upload and analyse";
        error.hidden = false;
        error.textContent = "The upload failed (connection lost?); try again.";
      });
      xhr.open("POST", form.action);
      xhr.send(new FormData(form));
    });
  }

  var jobs = document.querySelectorAll("[data-poll]");
  var finished = function (el) { return el.dataset.status === "done" || el.dataset.status === "failed"; };
  var show = function (el, s) {
    var state = el.querySelector(".state");
    var bar = el.querySelector("progress");
    var link = el.querySelector("a.open");
    el.dataset.status = s.status;
    if (s.status === "running") {
      state.textContent = (s.stage || "running") + " " + Math.round(100 * s.progress) + "%";
    } else if (s.status === "done") {
      state.textContent = "done: " + s.rep_count + (s.rep_count === 1 ? " rep" : " reps");
    } else if (s.status === "failed") {
      state.textContent = "failed: " + (s.error || "unknown error");
    } else {
      state.textContent = s.status;
    }
    if (bar) { bar.value = s.progress; bar.hidden = finished(el); }
    if (link) { link.hidden = s.status !== "done"; }
    if (el.dataset.reload && finished(el)) { window.location.reload(); }
  };
  var poll = function () {
    var pending = Array.prototype.filter.call(jobs, function (el) { return !finished(el); });
    if (!pending.length) { return; }
    Promise.all(pending.map(function (el) {
      return fetch("/api/clips/" + encodeURIComponent(el.dataset.poll), { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (s) { if (s) { show(el, s); } })
        .catch(function () {});
    })).then(function () { setTimeout(poll, 1000); });
  };
  if (jobs.length) { setTimeout(poll, 500); }
})();
