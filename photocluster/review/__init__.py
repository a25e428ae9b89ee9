"""`photocluster review`: a local web page over the catalog to look at people and faces and decide
about them (through :mod:`photocluster.decisions.log`, the same decisions and undo log as the
CLI).

``queries`` reads what each page shows, ``actions`` applies the page's decisions (refused when
the catalog changed since the page was drawn), ``server`` is the Starlette app (token, images by
id, errors as pages); ``templates/`` and ``static/`` are the page itself (plain HTML, CSS, JS).
"""
