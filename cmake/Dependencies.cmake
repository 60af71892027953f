# Every dependency comes from Debian packages (scripts/setup) or, for LibTorch on a GPU machine,
# from a Python torch install: pass -DCMAKE_PREFIX_PATH=$(python3 -c 'import torch;print(torch.utils.cmake_prefix_path)').
find_package(Torch REQUIRED)
find_package(fmt REQUIRED)
find_package(nlohmann_json REQUIRED)
find_package(doctest REQUIRED)
find_package(CLI11 REQUIRED)
find_package(Threads REQUIRED)
find_package(PkgConfig REQUIRED)
pkg_check_modules(LUA REQUIRED IMPORTED_TARGET lua5.4)
pkg_check_modules(PCRE2 REQUIRED IMPORTED_TARGET libpcre2-8)

# LibTorch's exported flags (e.g. the C++11 ABI switch) must reach every target that includes its headers.
separate_arguments(GRPO_TORCH_FLAGS UNIX_COMMAND "${TORCH_CXX_FLAGS}")
add_library(grpo_torch INTERFACE)
target_link_libraries(grpo_torch INTERFACE ${TORCH_LIBRARIES})
target_compile_options(grpo_torch INTERFACE ${GRPO_TORCH_FLAGS})
# Torch's own headers are noisy under -Wall; include them as system headers.
target_include_directories(grpo_torch SYSTEM INTERFACE ${TORCH_INCLUDE_DIRS})

if(TORCH_CUDA_LIBRARIES OR CUDA_FOUND)
  set(GRPO_WITH_CUDA ON)
else()
  set(GRPO_WITH_CUDA OFF)
endif()
message(STATUS "grpo: LibTorch ${Torch_VERSION} at ${Torch_DIR}, CUDA: ${GRPO_WITH_CUDA}")
