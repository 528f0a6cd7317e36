# The demo web app: labup's embedded default runs `python server.py` as service `app`
# on port 5001 (PORT in the environment) and waits until `/` answers.
from fasthtml.common import *

app, rt = fast_app()


@rt("/")
def get():
    import numpy as np

    return Titled("labup demo", P(f"numpy says the sum of 0..9 is {np.arange(10).sum()}"))


# 127.0.0.1: only this machine can reach the app (serve() alone binds every interface).
serve(host="127.0.0.1")
