################################################################################
# keyspot-psoc6 without ModusToolbox: the same application, libraries and
# COMPONENTS as the ModusToolbox Makefile, compiled and linked with Debian's
# arm-none-eabi-gcc for the kit's Cortex-M4 (hard float).
#
#   make -f gcc.mk            fetch the libraries of deps/ (getlibs.sh), build
#                             build/keyspot-psoc6.elf, .hex and size.json
#   make -f gcc.mk getlibs    only fetch the libraries
#   make -f gcc.mk clean
#
# Sources are found in each library as ModusToolbox finds them
# (mtb_sources.py: COMPONENT_/TOOLCHAIN_/TARGET_ folders, .cyignore), so the
# ModusToolbox build and this one compile the same files. The BSP's linker
# script places the CM0+ image (psoc6cm0p, COMPONENT_CM0P_SLEEP) at the start
# of flash, so the .hex boots both cores as ModusToolbox's own does.
################################################################################

include app.mk

DEVICE := CY8C624ABZI-S2D44
BUILD ?= build
MTB_SHARED ?= ../mtb_shared
PYTHON ?= python3

# ModusToolbox's COMPONENTS for this target and core: the BSP's
# (CY8CKIT-062S2-43012.mk), the device's (PSOC6_02), the core and its float
# ABI (CM4, VFP_SELECT=hardfp), then the application's (app.mk).
ALL_COMPONENTS := $(TARGET) CAT1 CAT1A PSOC6_02 CM4 HARDFP \
	CM0P_SLEEP BSP_DESIGN_MODUS PSOC6HAL 43012 MURATA-1LV HCI-UART $(COMPONENTS)
# The application's DEFINES (app.mk) and the ones ModusToolbox adds.
ALL_DEFINES := $(DEFINES) CY_USING_HAL $(subst -,_,$(DEVICE)) CY_SUPPORTS_DEVICE_VALIDATION \
	TARGET_$(subst -,_,$(TARGET)) CY_TARGET_BOARD=$(subst -,_,$(TARGET)) \
	CY_APPNAME_$(subst -,_,$(APPNAME)) \
	$(addprefix COMPONENT_,$(subst -,_,$(ALL_COMPONENTS)))

# Library folders, at the tags deps/*.mtb pins (read from there).
DEPS := $(sort $(wildcard deps/*.mtb))
# URL#TAG#$$ASSET_REPO$$/<name>/<tag>: the tag is the line's last path part.
dep_dir = $(MTB_SHARED)/$(basename $(notdir $(1)))/$(notdir $(shell cat $(1)))
# The build tools of ModusToolbox are not compiled into the application.
LIB_DIRS := $(foreach d,$(filter-out deps/core-make.mtb deps/recipe-make-cat1a.mtb,$(DEPS)),$(call dep_dir,$(d)))
BSP_DIR := $(call dep_dir,deps/TARGET_CY8CKIT-062S2-43012.mtb)
LINKER_SCRIPT := $(BSP_DIR)/COMPONENT_CM4/TOOLCHAIN_GCC_ARM/cy8c6xxa_cm4_dual.ld

# The application: what ModusToolbox finds in source/ and in GENERATED (the
# folder c-export wrote, app.mk), and the SOURCES app.mk names; sorted, as a
# GENERATED outside this folder is among those SOURCES too.
APP_C := $(sort $(wildcard source/*.c $(GENERATED)/*.c) $(filter %.c,$(SOURCES)))
APP_CXX := $(wildcard source/*.cpp) $(filter %.cpp,$(SOURCES))

CROSS ?= arm-none-eabi-
CC := $(CROSS)gcc
CXX := $(CROSS)g++
OBJCOPY := $(CROSS)objcopy
NM := $(CROSS)nm
CPU := -mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16
# As the GCC_ARM recipe compiles a Release build.
COMMON := $(CPU) -Os -g -ffunction-sections -fdata-sections -ffat-lto-objects -pipe -Wall
CFLAGS_ALL := $(COMMON) -std=gnu11
CXXFLAGS_ALL := $(COMMON) -std=gnu++17 -fno-rtti -fno-exceptions -fno-threadsafe-statics
LDFLAGS_ALL := $(CPU) --specs=nano.specs -Wl,--gc-sections -T $(LINKER_SCRIPT) \
	-Wl,-Map,$(BUILD)/$(APPNAME).map -Wl,--no-warn-rwx-segments

.PHONY: all getlibs clean
all: $(BUILD)/$(APPNAME).hex $(BUILD)/size.json

getlibs:
	MTB_SHARED=$(MTB_SHARED) ./getlibs.sh

$(BUILD)/libs.stamp: $(DEPS) getlibs.sh
	MTB_SHARED=$(MTB_SHARED) ./getlibs.sh
	@mkdir -p $(BUILD) && touch $@

# What to compile from the libraries, listed once the libraries are there.
$(BUILD)/libs.mk: $(BUILD)/libs.stamp mtb_sources.py gcc.mk app.mk
	$(PYTHON) mtb_sources.py --components "$(ALL_COMPONENTS)" --toolchain $(TOOLCHAIN) --target $(TARGET) \
		--config $(CONFIG) --var LIB $(LIB_DIRS) > $@.tmp && mv $@.tmp $@

ifeq ($(filter getlibs clean,$(MAKECMDGOALS)),)
-include $(BUILD)/libs.mk
# What a build was made from beyond its sources: a file that changes when
# GENERATED (and, for QEMU, CLIPS) name other folders, so that objects built
# from other generated headers are rebuilt, never reused.
remember = $(shell mkdir -p $(dir $(1)) && [ "$$(cat $(1) 2>/dev/null)" = "$(2)" ] || echo "$(2)" > $(1))$(1)
APP_INPUTS := $(call remember,$(BUILD)/inputs.txt,$(abspath $(GENERATED)))
QEMU_INPUTS = $(call remember,$(QEMU_BUILD)/inputs.txt,$(abspath $(GENERATED)) $(abspath $(CLIPS)) $(QEMU_CFLAGS))
endif

CPPFLAGS_ALL := $(addprefix -D,$(ALL_DEFINES)) \
	$(addprefix -I,$(INCLUDES) $(LIB_INCLUDES)) -MMD -MP

# Objects mirror their sources' absolute paths under build/obj.
obj = $(BUILD)/obj$(abspath $(1)).o
APP_OBJECTS := $(foreach f,$(APP_C) $(APP_CXX),$(call obj,$(f)))
LIB_OBJECTS := $(foreach f,$(LIB_C) $(LIB_CXX) $(LIB_ASM),$(call obj,$(f)))
OBJECTS := $(APP_OBJECTS) $(LIB_OBJECTS)
$(APP_OBJECTS): $(APP_INPUTS)

# One line a file, as ModusToolbox prints; V=1 shows the commands.
Q := $(if $(filter 1,$(V)),,@)
define compile_rule
$(call obj,$(1)): $(1) $(BUILD)/libs.mk
	@mkdir -p $$(@D)
	@$(if $(Q),echo "Compiling $$(notdir $$<)")
	$(Q)$(2) -c $$< -o $$@
endef
$(foreach f,$(APP_C) $(LIB_C),$(eval $(call compile_rule,$(f),$$(CC) $$(CPPFLAGS_ALL) $$(CFLAGS_ALL))))
$(foreach f,$(APP_CXX) $(LIB_CXX),$(eval $(call compile_rule,$(f),$$(CXX) $$(CPPFLAGS_ALL) $$(CXXFLAGS_ALL))))
$(foreach f,$(LIB_ASM),$(eval $(call compile_rule,$(f),$$(CC) $$(CPPFLAGS_ALL) $$(CPU) -x assembler-with-cpp)))

$(BUILD)/$(APPNAME).elf: $(OBJECTS) $(LIB_LIBS) $(LINKER_SCRIPT)
	@echo "Linking $@"
	$(Q)$(CXX) $(LDFLAGS_ALL) $(OBJECTS) -Wl,--start-group $(LIB_LIBS) -lstdc++ -lsupc++ -lm -lc -lgcc -lnosys \
		-Wl,--end-group -o $@

$(BUILD)/$(APPNAME).hex: $(BUILD)/$(APPNAME).elf
	$(OBJCOPY) -O ihex $< $@

$(BUILD)/size.json: $(BUILD)/$(APPNAME).elf size_report.py
	$(PYTHON) size_report.py $(BUILD)/$(APPNAME).elf $(BUILD)/$(APPNAME).map --out $@

################################################################################
# The same model runner on QEMU's mps2-an386 (Cortex-M4F), with the same
# TFLite Micro library and generated folder, on the clips in
# $(CLIPS)/test_clips.c (tests/test_psoc6_firmware.py and
# bench/engine_report.py write them):
#
#   make -f gcc.mk qemu CLIPS=dir [GENERATED=dir]   build/qemu/keyspot-qemu.elf
#   make -f gcc.mk run-qemu CLIPS=dir               build and run it
#
# GENERATED (default source/generated) may be any folder c-export wrote, for
# either engine. One set of flags (QEMU_CFLAGS) for everything compiled here,
# so that the two engines are measured alike.
################################################################################

CLIPS ?= $(BUILD)/clips
QEMU_BUILD := $(BUILD)/qemu
QEMU_CFLAGS ?= -O2
QEMU_FLAGS_ALL := $(CPU) $(QEMU_CFLAGS) -ffunction-sections -fdata-sections -ffp-contract=off -MMD -MP \
	$(addprefix -D,$(DEFINES) KEYSPOT_PRINT_SCORES) \
	-I$(GENERATED) -Isource -I../core -I../core/qemu -I$(CLIPS) \
	$(addprefix -I,$(foreach d,$(LIB_INCLUDES),$(if $(findstring /ml-tflite-micro/,$(d)),$(d))))
QEMU_C := qemu/main.c ../core/qemu/startup.c ../core/qemu/clip_report.c source/model_runner_c.c \
	../core/fft.c ../core/frontend.c $(filter ../core/engine/%,$(SOURCES)) \
	$(wildcard $(GENERATED)/*.c) $(CLIPS)/test_clips.c
QEMU_CXX := source/model_runner.cpp
QEMU_OBJECTS := $(foreach f,$(QEMU_C) $(QEMU_CXX),$(QEMU_BUILD)/obj$(abspath $(f)).o)
QEMU_TIMEOUT ?= 300

define qemu_rule
$(QEMU_BUILD)/obj$(abspath $(1)).o: $(1) $(BUILD)/libs.mk $(QEMU_INPUTS)
	@mkdir -p $$(@D)
	@$(if $(Q),echo "Compiling $$(notdir $$<) for QEMU")
	$(Q)$(2) $$(QEMU_FLAGS_ALL) -c $$< -o $$@
endef
$(foreach f,$(QEMU_C),$(eval $(call qemu_rule,$(f),$$(CC) -std=gnu11)))
$(foreach f,$(QEMU_CXX),$(eval $(call qemu_rule,$(f),$$(CXX) -std=gnu++17 -fno-rtti -fno-exceptions \
	-fno-threadsafe-statics)))

.PHONY: qemu run-qemu
qemu: $(QEMU_BUILD)/keyspot-qemu.elf
$(QEMU_BUILD)/keyspot-qemu.elf: $(QEMU_OBJECTS) ../core/qemu/mps2_an386.ld
	@echo "Linking $@"
	$(Q)$(CXX) $(CPU) --specs=rdimon.specs -nostartfiles -T ../core/qemu/mps2_an386.ld -Wl,--gc-sections \
		-Wl,--no-warn-rwx-segments $(QEMU_OBJECTS) \
		$(filter %libtensorflow-microlite.a,$(LIB_LIBS)) -lstdc++ -lm -lc -lrdimon -o $@

run-qemu: $(QEMU_BUILD)/keyspot-qemu.elf
	timeout $(QEMU_TIMEOUT) qemu-system-arm -M mps2-an386 -nographic -monitor none \
		-semihosting-config enable=on,target=native $(QEMU_RUN_FLAGS) -kernel $<

clean:
	rm -rf $(BUILD)

-include $(OBJECTS:.o=.d) $(QEMU_OBJECTS:.o=.d)
