"""Who may do what: Pelcro accounts, their sites, members, API keys and OAuth connections."""

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

from accounts import crypto
from accounts.auth_epoch import PublishingQuerySet


class Account(models.Model):
    """A Pelcro account. Its Core API key is stored encrypted (see `accounts.crypto`).

    Its Core API rate limit (requests per minute, counted by Pelcro per account across all
    endpoints) is read from `GET /account` (`data.api_core_rate_limit`, CORE_API.md §2 and
    §8.1) when a key is saved and on a schedule (`accounts.upstream_account`). Accounts
    whose key cannot read `/account` can have one entered by hand; without either the
    gateway assumes Pelcro's documented default (settings `RATE_LIMIT`, 120).
    """

    class LimitSource(models.TextChoices):
        UPSTREAM = "upstream", "upstream /account"
        MANUAL = "manual", "manual"
        DEFAULT = "default", "default"

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=100, unique=True)
    api_key_encrypted = models.TextField(blank=True, editable=False)
    api_key_last4 = models.CharField(max_length=4, blank=True, editable=False)
    api_key_set_at = models.DateTimeField(null=True, blank=True, editable=False)
    api_core_rate_limit = models.PositiveIntegerField(
        "Core API rate limit",
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(1_000_000)],
        help_text="Requests per minute Pelcro allows this account. Read from GET /account; "
        "enter it by hand only if the key cannot read /account. Blank: the default.",
    )
    rate_limit_source = models.CharField(
        max_length=10, choices=LimitSource.choices, default=LimitSource.DEFAULT, editable=False
    )
    # The last successful GET /account, and why the last attempt failed (blank if it did not).
    upstream_read_at = models.DateTimeField("read from Pelcro at", null=True, blank=True, editable=False)
    upstream_read_error = models.CharField("last read error", max_length=500, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    # Bulk updates change what token checks read: published (accounts.auth_epoch).
    objects = PublishingQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def set_api_key(self, api_key: str) -> None:
        self.api_key_encrypted = crypto.encrypt(api_key)
        self.api_key_last4 = api_key[-4:]
        self.api_key_set_at = timezone.now()

    def get_api_key(self) -> str:
        if not self.api_key_encrypted:
            raise ValueError(f"account {self.slug} has no Core API key")
        return crypto.decrypt(self.api_key_encrypted)

    @property
    def has_api_key(self) -> bool:
        return bool(self.api_key_encrypted)

    @property
    def rate_limit(self) -> int:
        """The Core API requests per minute this account gets: its own, else the default."""
        return self.api_core_rate_limit or int(settings.PELCRO_GATEWAY["RATE_LIMIT"])


class Site(models.Model):
    """A Pelcro site; `site_id` is Pelcro's own id, the one tools take.

    Sites come from the account's `GET /account` answer (`source` upstream) or are entered
    by hand for accounts whose key cannot read `/account` (`source` manual).
    """

    class Source(models.TextChoices):
        UPSTREAM = "upstream", "upstream /account"
        MANUAL = "manual", "manual"

    site_id = models.PositiveIntegerField(unique=True)
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="sites")
    name = models.CharField(max_length=200)
    url = models.CharField(max_length=500, blank=True)
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.MANUAL)
    subscriber_access_enabled = models.BooleanField(
        "subscriber access enabled",
        default=False,
        help_text="Let this site's subscribers sign in with their Pelcro customer e-mail and password and "
        "connect apps to the Open server (/open), acting on their own subscriptions, invoices and payment "
        "methods. Off: the site is not offered at subscriber sign-in.",
    )

    # Bulk updates change what token checks read: published (accounts.auth_epoch).
    objects = PublishingQuerySet.as_manager()

    class Meta:
        ordering = ["site_id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.site_id})"


class Membership(models.Model):
    class Role(models.TextChoices):
        OWNER = "owner", "Owner"
        ADMIN = "admin", "Administrator"
        MEMBER = "member", "Member"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)
    created_at = models.DateTimeField(auto_now_add=True)

    # Bulk updates change what token checks read: published (accounts.auth_epoch).
    objects = PublishingQuerySet.as_manager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "account"], name="one_membership_per_account")]

    def __str__(self) -> str:
        return f"{self.user} in {self.account} ({self.role})"


class Connection(models.Model):
    """One user + one OAuth client + one account: what a consent creates.

    Every access and refresh token issued through that consent belongs to it; revoking the
    connection revokes them all at once.
    """

    class Access(models.TextChoices):
        READ_WRITE = "read_write", "Read and write"
        READ = "read", "Read only"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="connections")
    application = models.ForeignKey("oauth2_provider.Application", on_delete=models.CASCADE, related_name="connections")
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="connections")
    access = models.CharField(max_length=12, choices=Access.choices, default=Access.READ_WRITE)
    confirm_writes = models.BooleanField(
        "ask before money-moving or irreversible actions",
        default=True,
        help_text='Chosen at consent; only an account owner or admin may turn it off (README "Safe writes").',
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.CharField(
        max_length=200,
        blank=True,
        help_text="Who revoked it: 'user:<username>' (the person), 'staff:<username>' (admin), "
        "'client' (RFC 7009 revocation by the app), 'membership' (the person lost the role) or 'pelcro' "
        "(Pelcro refused the subscriber's sign-in: signed out elsewhere, password changed, expired).",
    )

    # Bulk updates change what token checks read: published (accounts.auth_epoch).
    objects = PublishingQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["user", "revoked_at"])]

    def __str__(self) -> str:
        return f"{self.application} → {self.account} for {self.user}"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    @property
    def can_write(self) -> bool:
        return self.access == self.Access.READ_WRITE

    def revoked_by_display(self, viewer=None) -> str:
        """Who revoked the connection, in words ("you" when `viewer` did it). Besides the
        kinds of `revoked_by`'s help text, 'subscriber:<username>' is the subscriber at
        /open/connections (`mcp_bridge.open.connections`), 'site' the site's subscriber
        access turned off and 'expired' a subscriber connection that could no longer be used
        (`accounts.connections.end_site_connections`, `end_dead_connections`). A subscriber `viewer` is not told
        an operator's username."""
        kind, _, name = self.revoked_by.partition(":")
        mine = viewer is not None and name == viewer.get_username()
        if kind == "user":
            return "you" if mine else name
        if kind == "subscriber":
            return "you" if mine else "the subscriber"
        if kind == "staff":
            return (
                "an administrator"
                if viewer is not None and hasattr(viewer, "subscriber")
                else f"an administrator ({name})"
            )
        return {
            "client": "the app itself",
            "membership": "a change of your role in the account",
            "pelcro": "the publication (your sign-in there ended)",
            "site": "the publication (it turned off sign-in for apps)",
            "expired": "the gateway (its sign-in expired unused)",
        }.get(kind, "the gateway")


class TokenBinding(models.Model):
    """Ties one DOT access token to the connection it was issued for.

    DOT's token models stay unswapped; this side table carries the account and access
    level from the consent (grant) to every access token, including refreshed ones.
    """

    access_token = models.OneToOneField("oauth2_provider.AccessToken", on_delete=models.CASCADE, related_name="binding")
    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="token_bindings")

    # Bulk updates change what token checks read: published (accounts.auth_epoch).
    objects = PublishingQuerySet.as_manager()

    def __str__(self) -> str:
        return f"token {self.access_token_id} of connection {self.connection_id}"


class AuthorizationConsent(models.Model):
    """What the person chose on the consent screen for one authorization code.

    DOT's Grant stays unswapped; this side record carries the chosen account and access
    level from the code to the tokens. It outlives the Grant (which is deleted when the
    code is redeemed) so that a replayed code can be recognised and the tokens issued
    from it revoked (OAuth 2.1 §4.1.3).
    """

    code_checksum = models.CharField(max_length=64, unique=True)  # SHA-256 of the code
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    application = models.ForeignKey("oauth2_provider.Application", on_delete=models.CASCADE, related_name="+")
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="+")
    access = models.CharField(max_length=12, choices=Connection.Access.choices)
    # "Ask me before money-moving or irreversible actions" (Connection.confirm_writes).
    confirm_writes = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    redeemed_at = models.DateTimeField(null=True, blank=True)
    connection = models.ForeignKey(Connection, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    token_family = models.UUIDField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["created_at"])]

    def __str__(self) -> str:
        return f"consent {self.pk}: {self.account} ({self.access}) for {self.user}"


class RefreshSuccessor(models.Model):
    """The pair a rotated refresh token was exchanged for, kept for the grace window.

    Several processes of one desktop client often share a stored refresh token and
    refresh at the same moment. The first rotation wins; a duplicate arriving within
    `REFRESH_TOKEN_GRACE_SECONDS` gets this same pair back instead of a reuse alarm that
    would kill the winner's tokens (accounts.rotation). Tokens are hashed at rest, so the
    pair is sealed with a key derived from the old raw refresh token: only someone who
    holds that token can open it, and the database alone reveals nothing.
    """

    refresh_token = models.OneToOneField(
        "oauth2_provider.RefreshToken", on_delete=models.CASCADE, primary_key=True, related_name="successor"
    )
    sealed = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    def __str__(self) -> str:
        return f"successor of refresh token {self.refresh_token_id}"


class ClientRegistration(models.Model):
    """What DOT's Application does not keep of a dynamic registration (RFC 7591).

    - `token_endpoint_auth_method` as registered, so every answer about the client says
      what it asked for (`client_secret_post` or `client_secret_basic`; both work).
    - `metadata_digest`: SHA-256 of the canonical metadata of a public client, so a
      client that registers afresh on every start gets its identical registration back
      instead of filling the table and hitting the per-IP cap (accounts.registrations).
    """

    application = models.OneToOneField(
        "oauth2_provider.Application", on_delete=models.CASCADE, primary_key=True, related_name="registration"
    )
    token_endpoint_auth_method = models.CharField(max_length=32)
    metadata_digest = models.CharField(max_length=64, blank=True, db_index=True)
    reused_count = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"registration of {self.application_id}"


class Subscriber(models.Model):
    """A Pelcro customer of one site, as a gateway user of its own kind (DESIGN.md "The Open server").

    Each subscriber gets a user record so django-oauth-toolkit's grants, tokens, revocation
    and admin work unchanged, but that user can never act as an operator: no usable
    password (so `/login` and `/admin/login/` can never accept it; `accounts.sign_in`
    refuses it outright too), never staff or superuser, no memberships, no e-mail on the
    user record (operator sign-in resolves e-mail addresses, a subscriber's must not match),
    and it may authorize only the Open server's resource (`PUBLIC_URL/open`). One record per
    site + Pelcro customer id: the same person on two sites is two subscribers, as they are
    two customers in Pelcro.
    """

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="subscriber")
    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="subscribers")
    customer_id = models.PositiveBigIntegerField(help_text="Pelcro's customer id (the JWT's `sub`).")
    email = models.EmailField(help_text="The customer's e-mail as Pelcro last reported it (for display).")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["site", "customer_id"], name="one_subscriber_per_site_customer"),
        ]

    def __str__(self) -> str:
        return f"{self.email} (customer {self.customer_id} of site {self.site.site_id})"

    @staticmethod
    def username_for(site_id: int, customer_id: int) -> str:
        """The user record's username: `subscriber.<site_id>.<customer_id>` (Django's username
        characters; never typed by anyone, as the user has no usable password)."""
        return f"subscriber.{site_id}.{customer_id}"


class SubscriberCredential(models.Model):
    """The Pelcro customer JWT an Open connection acts with (OPEN_API.md §2).

    Encrypted at rest exactly like Core API keys (`accounts.crypto`, Fernet with rotation).
    `expires_at` is the JWT's `exp`; the Open client refreshes the JWT through
    `POST /customer/refresh` before then and stores the new one here. When Pelcro answers
    401 or 403 for it, the connection ends (it is revoked and the app must sign in again).
    """

    connection = models.OneToOneField(
        Connection, on_delete=models.CASCADE, primary_key=True, related_name="subscriber_credential"
    )
    jwt_encrypted = models.TextField(editable=False)
    expires_at = models.DateTimeField(help_text="The JWT's `exp` claim.")
    refreshed_at = models.DateTimeField(null=True, blank=True, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Pelcro JWT of connection {self.connection_id} (expires {self.expires_at:%Y-%m-%d %H:%M} UTC)"

    def set_jwt(self, jwt: str, expires_at) -> None:
        self.jwt_encrypted = crypto.encrypt(jwt)
        self.expires_at = expires_at

    def get_jwt(self) -> str:
        return crypto.decrypt(self.jwt_encrypted)


class ConsentCredential(models.Model):
    """The Pelcro JWT a subscriber's consent carries from sign-in to the code exchange.

    The subscriber signs in (Open API login) on the authorization page; the JWT stays
    encrypted (`accounts.crypto`) in the server-side session until they allow, then here,
    next to the consent of the authorization code, until the app redeems the code: the
    exchange moves it, still encrypted, to the connection's `SubscriberCredential` and
    deletes this row, or, when that connection already held a JWT (the same app connected
    again), keeps the replaced JWT here. The Open sign-in sweep (`mcp_bridge.open.sign_out`)
    signs out and deletes the JWT of every row left once the code can no longer be redeemed.
    """

    consent = models.OneToOneField(
        AuthorizationConsent, on_delete=models.CASCADE, primary_key=True, related_name="subscriber_credential"
    )
    jwt_encrypted = models.TextField(editable=False)
    expires_at = models.DateTimeField(help_text="The JWT's `exp` claim.")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    def __str__(self) -> str:
        return f"Pelcro JWT of consent {self.consent_id}"
