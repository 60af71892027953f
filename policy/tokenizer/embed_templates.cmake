# Writes builtin_templates.cpp: every templates/*.json as a string literal, so the `grpo` binary needs
# no data files at run time. Run at build time with -DTEMPLATE_DIR=... -DOUTPUT=...
file(GLOB files ${TEMPLATE_DIR}/*.json)
list(SORT files)
set(body "")
set(count 0)
foreach(f ${files})
  get_filename_component(name ${f} NAME_WE)
  file(READ ${f} text)
  string(APPEND body "    {\"${name}\", R\"grpo_template(${text})grpo_template\"},\n")
  math(EXPR count "${count} + 1")
endforeach()
file(WRITE ${OUTPUT}.tmp "// Generated from policy/tokenizer/templates/*.json by embed_templates.cmake. Do not edit.
#include <cstddef>

namespace grpo {
struct BuiltinTemplate {
  const char* name;
  const char* json;
};
extern const BuiltinTemplate kBuiltinTemplates[] = {
${body}};
extern const size_t kBuiltinTemplateCount = ${count};
}  // namespace grpo
")
execute_process(COMMAND ${CMAKE_COMMAND} -E copy_if_different ${OUTPUT}.tmp ${OUTPUT})
