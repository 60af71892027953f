# Helpers that keep the module CMakeLists short and uniform.

set(GRPO_WARNINGS -Wall -Wextra -Wno-unused-parameter)

# Unity builds: each LibTorch translation unit pays ~7 s on two idle cores just to load the 570 MB
# precompiled torch header, and instantiates the same torch templates as its neighbours; compiling a
# target's sources in batches of GRPO_UNITY_BATCH pays that once per batch. Batches of 8 keep two cores
# busy on the larger targets. Off: one object per source, for editing a single file in a tight loop.
option(GRPO_UNITY_BUILD "Compile LibTorch targets in unity batches" ON)
set(GRPO_UNITY_BATCH 8 CACHE STRING "Sources per unity batch")

function(grpo_unity target)
  if(GRPO_UNITY_BUILD)
    set_target_properties(${target} PROPERTIES UNITY_BUILD ON UNITY_BUILD_BATCH_SIZE ${GRPO_UNITY_BATCH})
  endif()
endfunction()

# grpo_module(NAME SOURCES... DEPENDS libs...): one static library per module folder. Sources are
# relative to the calling folder; the repository root is the include root (#include "policy/x.h").
function(grpo_module name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPENDS" ${ARGN})
  add_library(${name} STATIC ${ARG_SOURCES})
  target_include_directories(${name} PUBLIC ${PROJECT_SOURCE_DIR})
  target_link_libraries(${name} PUBLIC ${ARG_DEPENDS})
  target_compile_options(${name} PRIVATE ${GRPO_WARNINGS})
  set_target_properties(${name} PROPERTIES GRPO_USES_TORCH OFF)
endfunction()

# One precompiled torch header, built once and reused by every target that includes torch in its
# sources: on two cores each torch/torch.h parse costs ~10 s.
add_library(grpo_torch_pch STATIC ${PROJECT_SOURCE_DIR}/cmake/torch_pch.cpp)
target_link_libraries(grpo_torch_pch PUBLIC grpo_torch)
target_precompile_headers(grpo_torch_pch PRIVATE <torch/torch.h>)

function(grpo_use_torch_pch target)
  target_precompile_headers(${target} REUSE_FROM grpo_torch_pch)
endfunction()

# grpo_torch_module(NAME SOURCES... DEPENDS libs...): a module library whose sources include LibTorch.
function(grpo_torch_module name)
  grpo_module(${name} ${ARGN})
  target_link_libraries(${name} PUBLIC grpo_torch)
  grpo_use_torch_pch(${name})
  grpo_unity(${name})
  set_target_properties(${name} PROPERTIES GRPO_USES_TORCH ON)
endfunction()
