"""The estimators: one module each, each defining its function and registering its record.

Importing this package registers them all, in the order below: the order the widgets and the
command line list them (so the imports are not sorted). Adding an estimator is one new module
here and one line below; the modules whose names start with an underscore hold what several
estimators share.
"""
# isort: skip_file

from . import learned  # noqa: F401  (the default)
from . import gradient_ratio  # noqa: F401
from . import reference  # noqa: F401
from . import log_scale  # noqa: F401
from . import acutance  # noqa: F401
from . import difference  # noqa: F401
from . import reblur_curve  # noqa: F401
from . import directional  # noqa: F401

__all__: list[str] = []  # each estimator module holds its own
