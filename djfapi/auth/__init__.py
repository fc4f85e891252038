"""The token lifecycle: issue, refresh, revoke — add ``"djfapi.auth"`` to ``INSTALLED_APPS``.

* ``router.auth_router()``: login, refresh (rotation, reuse detection), logout, revoke, JWKS;
* ``tokens``: the same as functions (``issue_pair``, ``rotate``, ``revoke_user``, ``prune_tokens``...);
* ``claims``: the mapping from a Django user to a token's scopes, roles and tenant;
* ``revocation``: the revoked ids every process holds in memory, and how they travel;
* ``models``: token families, refresh tokens, revoked ids.

Settings (``DJFAPI``): ``AUTH_ACCESS_LIFETIME``, ``AUTH_REFRESH_LIFETIME``,
``AUTH_SUBJECT_FIELD``, ``AUTH_TENANT``, ``AUTH_CLAIMS``, ``AUTH_GROUP_SCOPES``,
``AUTH_LOGIN_LIMITS``, ``AUTH_REDIS_URL``, ``AUTH_CHANNEL``,
``AUTH_REVOCATION_POLL_INTERVAL``. The guide is ``docs/auth.md``.
"""
