"""The teacher's side: grade a class of submissions as untrusted code, locally or on Gradescope.

``submissions`` reads what a student handed in (only the kata files); ``grader`` grades one in its own
process and temporary copy, with limits, and re-derives the grade itself; ``flags`` lists what a
teacher should read; ``classroom`` is ``kata grade`` (a class in parallel, resumable, grades.csv);
``gradescope`` builds the autograder zip and turns a run into Gradescope's results.json.
"""
