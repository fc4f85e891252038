"""The schema <-> ORM layer: what djdantic did for pydantic 1, on pydantic 2.

* ``fields``  — ``Field(...)`` and the djfapi options it carries;
* ``base``    — ``BaseModel``, a pydantic model that reads Django instances;
* ``mapping`` — compiles a schema against a model once (errors at definition time);
* ``reading`` — instance -> plain data, following the mapping;
* ``plan``    — the select/prefetch plan that keeps lists free of N+1 queries;
* ``writing`` — body -> instance(s): create, patch, put and nested-list sync;
* ``visibility`` — which fields a caller may read or write.
"""
