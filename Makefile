# The two commands a newcomer needs: `make demo` and `make test`.
.PHONY: install build demo test bench dist clean

node_modules: package.json package-lock.json
	npm ci
	@touch node_modules

install: node_modules

build: node_modules
	node build.mjs

demo: build
	node dist/p2pshare.cjs demo

test: node_modules
	npm test

bench: node_modules
	npm run bench

# Standalone executables for five platforms (Node SEA); see scripts/sea.mjs.
dist: build
	node scripts/sea.mjs
	node scripts/check-dist.mjs

clean:
	rm -rf dist
