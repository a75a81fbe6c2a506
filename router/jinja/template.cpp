#include "router/jinja/template.h"

#include "router/jinja/builtins.h"
#include "router/jinja/parser.h"

namespace strata::jinja {

StatusOr<Template> Template::parse(std::string_view source) {
  try {
    Template t;
    t.body_ = std::make_shared<const Body>(parse_template(source));
    return t;
  } catch (const TemplateError& e) {
    return invalid_argument("chat template syntax error: {}", e.what());
  } catch (const std::exception& e) {
    return invalid_argument("chat template could not be parsed: {}", e.what());
  }
}

StatusOr<std::string> Template::render(const Value& context, const RenderLimits& limits) const {
  if (!context.is_object()) return invalid_argument("chat template context must be an object");
  try {
    return render_body(*body_, context, limits);
  } catch (const RaisedError& e) {
    return invalid_argument("{}", e.what());
  } catch (const TemplateError& e) {
    return invalid_argument("chat template error: {}", e.what());
  } catch (const std::exception& e) {
    return invalid_argument("chat template error: {}", e.what());
  }
}

}  // namespace strata::jinja
