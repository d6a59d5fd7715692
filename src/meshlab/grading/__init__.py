"""Grading a class: one lab, many students' submissions, a table of points (`meshlab grade`)."""
