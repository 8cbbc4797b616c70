"""Forms of the people-facing pages: sign-in (here and in the admin), the admin's password
change, and the consent screen."""

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm, AdminPasswordChangeForm
from django.contrib.auth import authenticate
from django.contrib.auth.forms import AuthenticationForm

from accounts import access as access_policy
from accounts import sign_in
from accounts.models import Account, Connection
from accounts.sign_in import LOCKED

LOCKED_MESSAGE = "Too many failed sign-in attempts. For your security, sign-in is paused: try again in about %(wait)s."


def _minutes(seconds: int) -> str:
    minutes = max(1, round(seconds / 60))
    return "1 minute" if minutes == 1 else f"{minutes} minutes"


class LoginForm(AuthenticationForm):
    """E-mail address or username + password, through the one sign-in path
    (`accounts.sign_in`: per-name and per-IP lock-out)."""

    username = forms.CharField(
        label="E-mail or username",
        max_length=254,
        widget=forms.TextInput(attrs={"autofocus": True, "autocomplete": "username", "autocapitalize": "none"}),
    )
    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": "That e-mail/username and password do not match. Check both and try again.",
        LOCKED: LOCKED_MESSAGE,
    }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["username"].widget.attrs["maxlength"] = 254  # e-mail addresses are longer than usernames

    def clean(self):
        identifier = self.cleaned_data.get("username") or ""
        password = self.cleaned_data.get("password")
        if not identifier.strip() or not password:
            return self.cleaned_data
        self.user_cache = authenticate(self.request, username=identifier, password=password)
        if self.user_cache is None:
            wait = sign_in.locked_for(self.request)
            if wait:
                raise forms.ValidationError(self.error_messages[LOCKED], code=LOCKED, params={"wait": _minutes(wait)})
            raise self.get_invalid_login_error()
        self.confirm_login_allowed(self.user_cache)
        return self.cleaned_data


class AdminLoginForm(LoginForm, AdminAuthenticationForm):
    """`/admin/login/`: the same sign-in (and lock-out) as /login, for staff accounts only. A
    non-staff account gets the same answer as a wrong password (AdminAuthenticationForm's
    staff check, with this form's message)."""


class CurrentPasswordChangeForm(AdminPasswordChangeForm):
    """The admin's "change password": the current password is checked through the one
    sign-in path too (counted and locked out like a sign-in with the account's username)."""

    error_messages = {**AdminPasswordChangeForm.error_messages, LOCKED: LOCKED_MESSAGE}

    def __init__(self, user, *args, request=None, **kwargs):
        super().__init__(user, *args, **kwargs)
        self.request = request

    def clean_old_password(self):
        old_password = self.cleaned_data["old_password"]
        checked = authenticate(self.request, username=self.user.get_username(), password=old_password)
        if checked is None or checked.pk != self.user.pk:
            wait = sign_in.locked_for(self.request)
            if wait:
                raise forms.ValidationError(self.error_messages[LOCKED], code=LOCKED, params={"wait": _minutes(wait)})
            raise forms.ValidationError(self.error_messages["password_incorrect"], code="password_incorrect")
        return old_password


class ConsentForm(forms.Form):
    """The consent screen's choices: allow or cancel, the account, the access level and
    whether the app must ask a person before money-moving or irreversible actions
    (`confirm_writes`; turning it off is refused unless the person is an owner or admin
    of the account).

    The OAuth request itself (client, redirect URI, PKCE challenge, scope, resource,
    state) is not in the form: it stays on the server, validated, in the session
    (accounts.views.consent), and the form names it only by `pending`, a random id. An
    edited page can change nothing but these choices."""

    allow = forms.BooleanField(required=False)
    pending = forms.CharField(widget=forms.HiddenInput(), max_length=64)
    account = forms.ModelChoiceField(
        queryset=Account.objects.none(), required=False, widget=forms.RadioSelect, empty_label=None
    )
    access = forms.ChoiceField(choices=Connection.Access.choices, required=False, widget=forms.RadioSelect)
    # "Ask me before money-moving or irreversible actions": the page sends "0" from a hidden
    # input and "1" from the checkbox after it (the last value wins), so only an explicit
    # unticking turns it off; a form without the field keeps asking.
    confirm_writes = forms.TypedChoiceField(
        choices=[("1", "Ask"), ("0", "Do not ask")],
        coerce=lambda value: value == "1",
        required=False,
        empty_value=True,
    )

    def __init__(self, *args, user, scope: str = "", **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        self.scope = scope
        self.fields["account"].queryset = Account.objects.filter(memberships__user=user).order_by("name")

    def write_requested(self) -> bool:
        return "write" in (self.scope or "").split()

    def clean(self):
        cleaned = super().clean()
        if not cleaned.get("allow"):
            return cleaned  # Cancel needs no choice
        account, access = cleaned.get("account"), cleaned.get("access")
        if account is None:
            self.add_error("account", "Choose the account this app may use.")
            return cleaned
        if not access:
            self.add_error("access", "Choose an access level.")
            return cleaned
        if access == access_policy.READ_WRITE and not self.write_requested():
            self.add_error("access", "This app asked for read-only access.")
        elif not access_policy.may_grant(self.user.pk, account.pk, access):
            self.add_error(
                "access",
                f"As a member of {account.name} you can grant read-only access. "
                "Ask an owner or admin of the account for write access.",
            )
        if cleaned.get("confirm_writes") is False and not access_policy.may_waive_confirmations(
            self.user.pk, account.pk
        ):
            self.add_error(
                "confirm_writes",
                f"Only an owner or admin of {account.name} may turn off confirmations of money-moving or "
                "irreversible actions. Leave it ticked.",
            )
        return cleaned
