"""Bearer tokens and service keys, shared by the services that issue and verify them.

* `claims`: what a casefile token says (roles, principal, `act` delegation) and how its
  claims become a principal. Pure.
* `keys`: key files: the HS256 key file of the embedded default and per-service ES256 pairs.
* `issuing` / `verifying`: signing casefile tokens, and checking them (HS256, OIDC JWKS, or a
  service's own ES256 key).
* `phone`: the phone API's tokens (dispatch), a separate audience with its own roles.
"""
