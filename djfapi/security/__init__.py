"""Authentication (bearer JWTs) and authorisation (scopes) for generated routes."""
