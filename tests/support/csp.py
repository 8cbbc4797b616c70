"""Content-Security-Policy headers in tests: parsed into directives, and the policy every
page but the consent page sends (settings.CONTENT_SECURITY_POLICY, built by django-csp)."""


def csp_directives(header: str) -> dict[str, list[str]]:
    """A Content-Security-Policy header as {directive: [source, …]} (CSP3 §2.2.1: `;`
    separates directives, whose order carries no meaning; django-csp does not keep one)."""
    directives = {}
    for part in header.split(";"):
        if part.strip():
            name, *sources = part.split()
            assert name not in directives, header  # a repeated directive is ignored by browsers
            directives[name] = sources
    return directives


# The policy every page had before django-csp built it (the hand-made header's exact value):
# no page may get a looser one.
GLOBAL_POLICY = {
    "default-src": ["'self'"],
    "img-src": ["'self'", "data:"],
    "style-src": ["'self'", "'unsafe-inline'"],
    "script-src": ["'self'"],
    "frame-ancestors": ["'none'"],
    "form-action": ["'self'", "http:", "https:", "cursor:", "vscode:", "windsurf:"],
    "base-uri": ["'none'"],
    "object-src": ["'none'"],
}
