"""A linked open data publisher for UN meetings.

The modules, in the order data flows through them:

- ``config``      every setting, with defaults that work locally
- ``loading``     Turtle sources → quads, one named graph per file (errors with file:line)
- ``validation``  pySHACL over the sources, and a readable report
- ``release``     a validated build written atomically as a release folder of dumps
- ``cli``         the ``lodpub`` command: validate, build, serve
"""
