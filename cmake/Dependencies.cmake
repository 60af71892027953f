# Every dependency comes from Debian packages (scripts/setup) or, for LibTorch on a GPU machine,
# from a Python torch install: pass -DCMAKE_PREFIX_PATH=$(python3 -c 'import torch;print(torch.utils.cmake_prefix_path)').
find_package(Torch REQUIRED)
find_package(fmt REQUIRED)
# Header-only fmt, for builds against a LibTorch that carries fmt headers of its own (a Python torch's
# include folder may): whichever fmt headers come first then also provide the implementation, so no
# object is compiled against one fmt version and linked to another. scripts/gpu_build turns it on.
option(GRPO_FMT_HEADER_ONLY "Use fmt header-only" OFF)
add_library(grpo_fmt INTERFACE)
if(GRPO_FMT_HEADER_ONLY)
  target_link_libraries(grpo_fmt INTERFACE fmt::fmt-header-only)
else()
  target_link_libraries(grpo_fmt INTERFACE fmt::fmt)
endif()
find_package(nlohmann_json REQUIRED)
find_package(doctest REQUIRED)
find_package(CLI11 REQUIRED)
find_package(Threads REQUIRED)
# Lua 5.4 and PCRE2 through pkg-config where there is one; a GPU machine that got them as unpacked .deb
# files (scripts/gpu_build) may have no pkg-config, so plain header and library searches stand in.
find_package(PkgConfig)
add_library(grpo_lua INTERFACE)
add_library(grpo_pcre2 INTERFACE)
if(PKG_CONFIG_FOUND)
  pkg_check_modules(LUA REQUIRED IMPORTED_TARGET lua5.4)
  pkg_check_modules(PCRE2 REQUIRED IMPORTED_TARGET libpcre2-8)
  target_link_libraries(grpo_lua INTERFACE PkgConfig::LUA)
  target_link_libraries(grpo_pcre2 INTERFACE PkgConfig::PCRE2)
else()
  find_path(GRPO_LUA_INCLUDE_DIR lua.hpp PATH_SUFFIXES lua5.4 REQUIRED)
  find_library(GRPO_LUA_LIBRARY NAMES lua5.4 REQUIRED)
  find_path(GRPO_PCRE2_INCLUDE_DIR pcre2.h REQUIRED)
  find_library(GRPO_PCRE2_LIBRARY NAMES pcre2-8 REQUIRED)
  target_include_directories(grpo_lua INTERFACE ${GRPO_LUA_INCLUDE_DIR})
  target_link_libraries(grpo_lua INTERFACE ${GRPO_LUA_LIBRARY})
  target_include_directories(grpo_pcre2 INTERFACE ${GRPO_PCRE2_INCLUDE_DIR})
  target_link_libraries(grpo_pcre2 INTERFACE ${GRPO_PCRE2_LIBRARY})
endif()

# cpp-httplib (HTTP server and client of the api/ module). Its pkg-config flags matter: they switch on
# the TLS and compression members of httplib's classes, and the library was compiled with them. Without
# it (a GPU machine's unpacked .deb files may lack it) the api/ module and `grpo serve` are not built.
add_library(grpo_httplib INTERFACE)
set(GRPO_WITH_HTTP OFF)
if(PKG_CONFIG_FOUND)
  pkg_check_modules(HTTPLIB IMPORTED_TARGET cpp-httplib)
endif()
if(HTTPLIB_FOUND)
  target_link_libraries(grpo_httplib INTERFACE PkgConfig::HTTPLIB Threads::Threads)
  set(GRPO_WITH_HTTP ON)
else()
  # Unpacked .deb files (scripts/gpu_build): Debian's library was built with these three switches.
  find_path(GRPO_HTTPLIB_INCLUDE_DIR httplib.h)
  find_library(GRPO_HTTPLIB_LIBRARY NAMES cpp-httplib)
  if(GRPO_HTTPLIB_INCLUDE_DIR AND GRPO_HTTPLIB_LIBRARY)
    target_include_directories(grpo_httplib INTERFACE ${GRPO_HTTPLIB_INCLUDE_DIR})
    target_link_libraries(grpo_httplib INTERFACE ${GRPO_HTTPLIB_LIBRARY} Threads::Threads)
    target_compile_definitions(grpo_httplib INTERFACE CPPHTTPLIB_OPENSSL_SUPPORT CPPHTTPLIB_ZLIB_SUPPORT CPPHTTPLIB_BROTLI_SUPPORT)
    set(GRPO_WITH_HTTP ON)
  endif()
endif()
message(STATUS "grpo: HTTP (cpp-httplib): ${GRPO_WITH_HTTP}")

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
