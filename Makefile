# Thin front for CMake: make, make test, make install PREFIX=/usr/local
PREFIX ?= /usr/local
BUILD  ?= build
JOBS   ?= $(shell nproc)

.PHONY: all test install bench clean deps
all: $(BUILD)/build.ninja
	cmake --build $(BUILD) -j $(JOBS)

$(BUILD)/build.ninja:
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX=$(PREFIX)

test: all
	cd $(BUILD) && ctest --output-on-failure

bench: all
	$(BUILD)/bench_speed

install: all
	cmake --install $(BUILD) --prefix $(PREFIX)

deps:
	bash scripts/install-deps.sh

clean:
	rm -rf $(BUILD)
