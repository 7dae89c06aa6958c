"""The testinfra suite that checks hosts against the same inventory the deploy used.

pytest --pyargs kdevbox.verify --inventory inventories/local.py
"""
