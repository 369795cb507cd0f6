"""The verbs that train or export, each a typed request and a function that runs it: :mod:`.distill`
(``distill``, ``teacher finetune``), :mod:`.supernet` (``supernet train``, ``supernet evaluate``) and
:mod:`.export` (``export``). The command line only parses options into a request, calls, and renders; the same
calls work from Python. Import the submodules (this package loads nothing)."""
