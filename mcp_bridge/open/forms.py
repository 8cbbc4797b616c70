"""Forms of the subscriber pages: the publication, the e-mail and password, the consent.

None of them carries an OAuth value: the authorization request stays on the server
(`mcp_bridge.open.views`), the forms name it only by `pending`, a random id.
"""

from django import forms

from accounts.models import Connection, Site


def subscriber_sites():
    """Sites whose account turned subscriber access on, by name: the ones a subscriber may
    pick (`Site.subscriber_access_enabled`)."""
    return Site.objects.filter(subscriber_access_enabled=True).order_by("name", "site_id")


class SiteForm(forms.Form):
    """Which publication the subscriber has an account with (a `site_id` among
    `subscriber_sites()`)."""

    site_id = forms.TypedChoiceField(
        coerce=int,
        widget=forms.RadioSelect,
        error_messages={
            "required": "Choose the publication you have an account with.",
            "invalid_choice": "That publication does not offer sign-in for apps here. Choose one of the list.",
        },
    )

    def __init__(self, *args, sites, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["site_id"].choices = [(site.site_id, site.name) for site in sites]


class SignInForm(forms.Form):
    """The subscriber's e-mail address and password with the publication (checked by
    Pelcro's Open API login, never stored)."""

    email = forms.CharField(
        label="E-mail address",
        max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "username", "autocapitalize": "none", "autofocus": True}),
        error_messages={"required": "Enter the e-mail address of your account with this publication."},
    )
    password = forms.CharField(
        label="Password",
        max_length=256,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
        error_messages={"required": "Enter your password with this publication."},
    )


class SubscriberConsentForm(forms.Form):
    """Allow or cancel, and the access level: read only, or read and write ("manage my
    subscriptions and payments"), the latter only when the app asked for `write`."""

    allow = forms.BooleanField(required=False)
    access = forms.ChoiceField(choices=Connection.Access.choices, required=False, widget=forms.RadioSelect)

    def __init__(self, *args, write_requested: bool, **kwargs):
        super().__init__(*args, **kwargs)
        self.write_requested = write_requested

    def clean(self):
        cleaned = super().clean()
        if not cleaned.get("allow"):
            return cleaned  # Cancel needs no choice
        access = cleaned.get("access")
        if not access:
            self.add_error("access", "Choose what the app may do.")
        elif access == Connection.Access.READ_WRITE and not self.write_requested:
            self.add_error("access", "This app asked for read-only access.")
        return cleaned
