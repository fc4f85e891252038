# settings.py: INSTALLED_APPS = [..., "djfapi", "djfapi.auth"]; then `manage.py migrate`
import djfapi
from djfapi.auth.router import auth_router
from djfapi.security.jwt import JWTToken

token = JWTToken()  # verifies as the API's routes do: revoked tokens are refused everywhere

app = djfapi.create_app(
    "testproject.api:router",
    auth_router(security=token),  # /auth/token, /auth/refresh, /auth/logout, /auth/revoke, /auth/jwks.json
    settings="testproject.settings",
)
