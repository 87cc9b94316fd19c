"""The site's Jinja environment reads a dict's keys first (server/templating.py): every template
must render exactly as under Jinja's own order, attribute first."""
import jinja2
from flask import Flask

from server.templating import ViewModelEnvironment

TEMPLATE = (
    "{{ d.title }}|{{ d.missing }}|{{ d.missing is defined }}|{{ d.nested.title }}|{{ d['title'] }}|"
    "{{ d.items is callable }}|{% for k, v in d.items() %}{{ k }}{% endfor %}|{{ d.get('title') }}|"
    "{{ shadow.items is callable }}|{{ shadow.get }}|{{ obj.real }}|{{ obj.imag }}|{{ sub.title }}|{{ sub.keys is callable }}"
)


class Sub(dict):
    pass


def test_templates_render_the_same_as_under_jinjas_own_order():
    values = {
        "d": {"title": "Réunion <b>", "nested": {"title": "اجتماع"}},
        "shadow": {"items": "a key named like a dict method", "get": "another"},
        "obj": 3 + 4j,
        "sub": Sub(title="subclass", keys="shadowed"),
    }
    reference = jinja2.Environment(autoescape=True).from_string(TEMPLATE).render(**values)
    ours = ViewModelEnvironment(Flask(__name__), autoescape=True).from_string(TEMPLATE).render(**values)
    assert ours == reference
    assert ours.startswith("Réunion &lt;b&gt;||False|اجتماع|Réunion &lt;b&gt;|True|titlenested|")


def test_the_app_renders_its_pages_with_it(built, settings):
    from server.app import create_app

    app = create_app(settings)
    assert isinstance(app.jinja_env, ViewModelEnvironment)
