"""Exercise checkers and reference solutions, one module per notebook.

Each checker takes the learner's function, runs it on cases with known answers and returns a
:class:`course_utils.feedback.Feedback` that says what is wrong and how to fix it.
"""
