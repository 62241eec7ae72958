# PA5 - two commands: `make run` (execute the notebooks) and `make test` (grade).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PA5_PROFILE ?= auto
export PA5_PROFILE

.PHONY: setup run test rehearse grade release solutions submit gradescope clean

setup: $(VENV)/.pa5-installed

# Reinstalls only when requirements.txt or pyproject.toml change (make compares mtimes).
$(VENV)/.pa5-installed: requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

## make run: execute task1..3 notebooks top to bottom into runs/<task>/ (profile from PA5_PROFILE)
run: setup
	$(PY) -m pa5.execute

## make test: unit tests, then every notebook in the tiny profile; prints the grade table. Then the
## release integrity check: every graded test must have passed here and must fail on the student release.
test: setup
	$(PY) -m pytest --grades-json=runs/test-grades.json --durations=15
	$(PY) tools/release.py check --solutions runs/test-grades.json

## make rehearse: the full profile offline on this CPU - fake assets in the real formats (pa5.fake_assets),
## the three notebooks with PA5_PROFILE=full PA5_REHEARSAL=1 (step counts cut), device audit and checks.
## `make test` runs it too (tests/test_rehearsal.py).
rehearse: setup
	$(PY) -m pa5.rehearse

## make grade: graded tests only; writes grades.json and grades.xml (JUnit). Failing tests are
## graded, not an error: pytest's exit status 1 is accepted, anything else (crash, usage) is not. A
## test file that fails to import is reported and the other files are still graded.
## (`--grades-json=PATH`, one word: as two, an existing PATH is taken for a test path and pytest
## then never loads tests/conftest.py, which defines the option.)
grade: setup
	$(PY) -m pytest -m points --continue-on-collection-errors --grades-json=grades.json --junitxml=grades.xml \
		|| test $$? -eq 1

## make release: build dist/student/ (solutions stubbed, hidden tests removed) and prove every graded
## test fails on it; the build fails naming any test that passes on the stubs.
release: setup
	$(PY) tools/release.py check

## make solutions: dist/solutions, the student release with the solution blocks kept (hidden tests and the
## answer key still out) - to publish after the deadline.
solutions: setup
	$(PY) tools/release.py build --solutions

## make submit: submission.zip - the graded files, the notebooks (written answers) and runs/<task>/'s
## executed notebooks, figures and metrics.json; prints what it holds and what is missing.
submit: setup
	$(PY) tools/submit.py

## make gradescope: dist/gradescope.zip, a Gradescope autograder (setup.sh + run_autograder) that grades
## a submission with this repository's tests, hidden ones included, into Gradescope's results.json.
gradescope: setup
	$(PY) tools/gradescope.py build

clean:
	rm -rf runs dist grades.json grades.xml submission.zip .pytest_cache
