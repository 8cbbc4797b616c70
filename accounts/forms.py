"""Forms of the people-facing pages: sign-in and the consent screen."""

from django import forms
from django.contrib.auth import authenticate, get_user_model
from django.contrib.auth.forms import AuthenticationForm
from oauth2_provider.forms import AllowForm

from accounts import access as access_policy
from accounts import throttle
from accounts.models import Account, Connection

LOCKED = "locked"


def _minutes(seconds: int) -> str:
    minutes = max(1, round(seconds / 60))
    return "1 minute" if minutes == 1 else f"{minutes} minutes"


class LoginForm(AuthenticationForm):
    """E-mail address or username + password, with per-user and per-IP lock-out."""

    username = forms.CharField(
        label="E-mail or username",
        max_length=254,
        widget=forms.TextInput(attrs={"autofocus": True, "autocomplete": "username", "autocapitalize": "none"}),
    )
    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": "That e-mail/username and password do not match. Check both and try again.",
        LOCKED: "Too many failed sign-in attempts. For your security, sign-in is paused: "
                "try again in about %(wait)s.",
    }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["username"].widget.attrs["maxlength"] = 254  # e-mail addresses are longer than usernames

    def _resolve_user(self, identifier: str):
        """The user an identifier names: exact username first, else a unique e-mail."""
        User = get_user_model()
        user = User._default_manager.filter(username=identifier).first()
        if user is None and "@" in identifier:
            matches = list(User._default_manager.filter(email__iexact=identifier)[:2])
            user = matches[0] if len(matches) == 1 else None
        return user

    def clean(self):
        identifier = (self.cleaned_data.get("username") or "").strip()
        password = self.cleaned_data.get("password")
        if not identifier or not password:
            return self.cleaned_data
        target = self._resolve_user(identifier)
        # Count guesses against the account when it exists (username and e-mail share
        # one counter), else against the typed name.
        user_key = f"user:{target.pk}" if target else f"name:{identifier.lower()}"
        ip = self.request.META.get("REMOTE_ADDR", "") if self.request else ""
        wait = throttle.login_retry_after(user_key, ip)
        if wait:
            raise forms.ValidationError(self.error_messages[LOCKED], code=LOCKED, params={"wait": _minutes(wait)})
        username = target.get_username() if target else identifier
        self.user_cache = authenticate(self.request, username=username, password=password)
        if self.user_cache is None:
            throttle.record_login_failure(user_key, ip)
            raise self.get_invalid_login_error()
        self.confirm_login_allowed(self.user_cache)
        throttle.clear_login_failures(user_key)
        return self.cleaned_data


class ConsentForm(AllowForm):
    """DOT's hidden authorization fields, plus the account and the access level."""

    account = forms.ModelChoiceField(queryset=Account.objects.none(), required=False, widget=forms.RadioSelect,
                                     empty_label=None)
    access = forms.ChoiceField(choices=Connection.Access.choices, required=False, widget=forms.RadioSelect)

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        self.fields["account"].queryset = Account.objects.filter(memberships__user=user).order_by("name")

    def write_requested(self) -> bool:
        scope = self.data.get("scope") if self.is_bound else self.initial.get("scope")
        return "write" in (scope or "").split()

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
            self.add_error("access", f"As a member of {account.name} you can grant read-only access. "
                                     "Ask an owner or admin of the account for write access.")
        return cleaned
