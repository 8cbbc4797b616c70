// Consent screen: a plain member may grant read-only access, so picking such an account
// switches the access choice to "Read only", and may not turn confirmations off, so the
// "Ask me before…" box stays ticked (the server enforces both rules).
(function () {
  var form = document.getElementById("consent-form");
  if (!form) return;
  var readWrite = document.getElementById("access-read-write");
  var readOnly = document.getElementById("access-read");
  var note = document.getElementById("member-note");
  var confirmBox = document.getElementById("confirm-writes");
  var confirmOff = document.getElementById("confirm-writes-off");

  function update() {
    var picked = form.querySelector('input[name="account"]:checked');
    var canWrite = !picked || picked.getAttribute("data-can-write") === "1";
    if (readWrite) {
      readWrite.disabled = !canWrite;
      if (!canWrite && readWrite.checked) readOnly.checked = true;
      readWrite.closest(".choice").classList.toggle("choice-disabled", !canWrite);
    }
    if (note) note.hidden = canWrite;
    if (confirmBox) {
      // Disabled inputs are not sent: the field is then absent, which keeps asking.
      if (!canWrite) confirmBox.checked = true;
      confirmBox.disabled = !canWrite;
      if (confirmOff) confirmOff.disabled = !canWrite;
      confirmBox.closest(".choice").classList.toggle("choice-disabled", !canWrite);
    }
  }

  form.addEventListener("change", function (event) {
    if (event.target.name === "account") update();
  });
  update();
})();
