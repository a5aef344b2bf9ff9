################################################################################
# keyspot-psoc6's own settings, read by the ModusToolbox Makefile and by the
# ModusToolbox-free build (gcc.mk), so that both build the same application.
################################################################################

# Target board/hardware (BSP).
TARGET=APP_CY8CKIT-062S2-43012

# Name of the application.
APPNAME=keyspot-psoc6

# GCC_ARM | ARM | IAR
TOOLCHAIN=GCC_ARM

# Debug | Release
CONFIG=Release

# TensorFlow Lite Micro interpreter with int8 kernels, as ml-tflite-micro's
# README and Infineon's ML code examples configure it. Its prebuilt
# Cortex-M4 library was compiled with CMSIS-NN's kernels inside (arm_*).
COMPONENTS+=ML_TFLM ML_INT8x8

# The folder c-export writes (export.out_dir): `make firmware` at the top of
# the repository passes the one params.yaml names.
GENERATED ?= source/generated

# Every .c/.cpp below this folder is built.
# The portable frontend and recognizer come from ../core (host-tested there);
# named one by one so that its host/ and qemu/ test programs stay out. The C
# engine's kernels (../core/engine) run models exported with
# export.engine=c; with the default TFLite Micro export nothing calls them
# and the linker drops them.
SOURCES=../core/fft.c ../core/frontend.c ../core/recognizer.c \
        ../core/engine/conv.c ../core/engine/depthwise.c ../core/engine/fully_connected.c \
        ../core/engine/pooling.c ../core/engine/softmax.c
INCLUDES=source $(GENERATED) ../core
# A GENERATED outside this folder, which ModusToolbox would not find:
SOURCES+=$(if $(filter $(abspath .)/%,$(abspath $(GENERATED))),,$(wildcard $(GENERATED)/*.c))

# The defines the prebuilt TFLite Micro library was compiled with, so that
# its headers declare what the library holds: static memory (no dynamic
# tensors), no error strings (its release variant has no MicroPrintf), and
# the CMSIS-NN kernel variants (Register_CONV_2D_INT8() and the like, which
# op_resolver.h in $(GENERATED) registers).
DEFINES+=TF_LITE_STATIC_MEMORY TF_LITE_STRIP_ERROR_STRINGS CMSIS_NN

VFP_SELECT=hardfp
