"""(scaffold: filled in by its issue)"""
from flask import Blueprint

blueprint = Blueprint("linked_data", __name__)
