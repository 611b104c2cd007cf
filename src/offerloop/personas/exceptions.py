from offerloop.core.errors import Conflict


class NoPersonaTemplates(Conflict):
    code = "no_persona_templates"
