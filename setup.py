"""pip install . at the repository root: the same package as pip install ./python
(python/setup.py builds both)."""

import os
import runpy

if __name__ == "__main__":
    here = os.path.dirname(os.path.abspath(__file__))
    runpy.run_path(os.path.join(here, "python", "setup.py"), run_name="__main__")
