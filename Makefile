# Two commands do everything on a fresh machine:
#   make demo   set up, then play a student who finished the modules and run the milestones
#               that need no download (1957 perceptron, 1969 XOR, smoke runs of 2017, microGPT
#               and TinyGPT)
#   make test   set up if needed, then run the whole test suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
SETUP  := $(VENV)/.installed
DEMO   := .tito/demo
DEMO_TITO := TITO_MODULES_DIR=$(DEMO)/modules TITO_STATE_DIR=$(DEMO) $(BIN)/tito  # tito as the demo student

.PHONY: setup setup-grading demo test stubs check-stubs clean

setup: $(SETUP)

# `tito grade` runs student code only inside bubblewrap (a Debian package, no daemon).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
setup-grading: setup
	@command -v bwrap >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq bubblewrap; }
	@$(BIN)/python -c "from grader.sandbox import sandbox_problem as p; import sys; print('sandbox:', p() or 'bubblewrap works'); sys.exit(1 if p() else 0)"

$(SETUP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e .
	touch $(SETUP)

# The demo student's files are copies of the reference solutions in a scratch folder, and the
# demo keeps its own progress: your modules/ and .tito/progress.json are never touched.
demo: setup
	rm -rf $(DEMO) && mkdir -p $(DEMO)
	cp -r solutions $(DEMO)/modules
	@echo "== a student who has just started =="
	$(DEMO_TITO) status
	@echo "== the student finishes the modules and checks them =="
	$(DEMO_TITO) check --all
	@echo "== the 1957 perceptron and the 1969 XOR are unlocked: run them =="
	$(DEMO_TITO) milestone run perceptron
	$(DEMO_TITO) milestone run xor
	@echo "== a taste of the 2017 transformer (smoke preset; the default run takes ~6 min) =="
	$(DEMO_TITO) milestone run transformer --preset smoke
	@echo "== microGPT, a GPT made of scalar Values (smoke preset; on the documentation's words unless the names are fetched) =="
	$(DEMO_TITO) milestone run microgpt --preset smoke
	@echo "== TinyGPT beside PyTorch (smoke preset; on the documentation text unless Shakespeare is fetched) =="
	$(DEMO_TITO) milestone run tinygpt --preset smoke
	@echo "== where the student stands now =="
	$(DEMO_TITO) status

test: setup setup-grading
	$(BIN)/python -m pytest tests/grader tests/milestones -q -p no:cacheprovider -n 2 --dist worksteal

stubs: setup
	$(BIN)/tito release --stubs

check-stubs: setup
	$(BIN)/tito release --check

clean:
	rm -rf $(VENV) .tito/demo
