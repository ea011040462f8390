from chalice import Chalice

from chalicelib.utils import greeting

app = Chalice(app_name="docs-app")


@app.route("/")
def index():
    return {"hello": greeting()}
