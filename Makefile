# The two commands a newcomer needs (see README.md), plus installers.
.PHONY: run test bundle test-update

run: ## Build, start the local reference server and the app pointed at it
	bash scripts/run.sh

test: ## Install what is missing, then fmt, clippy and every test including end-to-end
	bash scripts/test.sh

bundle: ## Release installers with the Tauri CLI (.deb and .rpm on Linux)
	bash scripts/bundle.sh

test-update: ## Build two signed release versions, install the first (.deb) and let it update itself to the second (root; long)
	bash scripts/test-update.sh
