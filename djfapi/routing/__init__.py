"""Router generation: a tree of ``DjangoRouterSchema`` nodes becomes FastAPI routes.

* ``django``    — ``DjangoRouterSchema`` and ``SecurityScopes`` (the public API);
* ``options``   — option objects and their inheritance down the tree;
* ``paths``     — URL segments, id parameter names and types;
* ``queries``   — row filters and the ancestor chain as querysets;
* ``signature`` — endpoint signatures built with ``inspect.Signature``;
* ``endpoints`` — the handlers behind each generated route;
* ``responses`` — rendering instances through the read schemas;
* ``route``     — the APIRoute class that parses JSON bodies strictly.
"""
