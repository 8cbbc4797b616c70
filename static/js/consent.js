// Consent screen: a plain member may grant read-only access, so picking such an account
// switches the access choice to "Read only" (the server enforces the same rule).
(function () {
  var form = document.getElementById("consent-form");
  if (!form) return;
  var readWrite = document.getElementById("access-read-write");
  var readOnly = document.getElementById("access-read");
  var note = document.getElementById("member-note");

  function update() {
    var picked = form.querySelector('input[name="account"]:checked');
    var canWrite = !picked || picked.getAttribute("data-can-write") === "1";
    if (readWrite) {
      readWrite.disabled = !canWrite;
      if (!canWrite && readWrite.checked) readOnly.checked = true;
      readWrite.closest(".choice").classList.toggle("choice-disabled", !canWrite);
    }
    if (note) note.hidden = canWrite;
  }

  form.addEventListener("change", function (event) {
    if (event.target.name === "account") update();
  });
  update();
})();
