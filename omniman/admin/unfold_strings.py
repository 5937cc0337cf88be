"""django-unfold's own strings, for our pt-BR catalogue.

The admin runs on django-unfold, which ships no translations: its sidebar, search, filters and
buttons would stay in English on a pt-BR manager's screens. Django merges every installed app's
catalogue per language, so translating unfold's msgids in ours translates its templates. These are
the msgids of unfold's core templates and code (not its contrib apps, which Omniman does not use)
that neither Django nor DRF translates; ``makemessages`` reads them here (nothing imports this
module). Refresh the list when unfold is upgraded (docs/guides/languages.rst).
"""

from django.utils.translation import gettext_noop, ngettext_lazy

UNFOLD_STRINGS = (
    gettext_noop("Select record"),
    gettext_noop("Select action"),
    gettext_noop("Select action to run"),
    gettext_noop("Raw passwords are not stored, so there is no way to see this user’s password, but you can change the password using <a href=\"{}\" class=\"text-primary-600 dark:text-primary-500\">this form</a>."),
    gettext_noop("Select value"),
    gettext_noop("Dataset not found. No action performed."),
    gettext_noop("You can not create nested object without parent"),
    gettext_noop("Run"),
    gettext_noop("After you've created a user, you’ll be able to edit more user options."),
    gettext_noop("Expand row"),
    gettext_noop("Welcome back to"),
    gettext_noop("Forgotten your password or username?"),
    gettext_noop("Type to search"),
    gettext_noop("You have been successfully logged out from the administration"),
    gettext_noop("No data"),
    gettext_noop("More actions"),
    gettext_noop("All applications"),
    gettext_noop("True"),
    gettext_noop("False"),
    gettext_noop("Apply Filters"),
    gettext_noop("Select all rows"),
    gettext_noop("Recent searches"),
    gettext_noop("No recent searches"),
    gettext_noop("No results matching your query"),
    gettext_noop("Loading more results..."),
    gettext_noop("Submit"),
    gettext_noop("Record picture"),
    gettext_noop("This item will be deleted."),
    gettext_noop("Click to cancel"),
    gettext_noop("No results found"),
    gettext_noop("This page yielded into no results. Create a new item or reset your filters."),
    gettext_noop("Reset filters"),
    gettext_noop("Image preview"),
    gettext_noop("Click to download"),
    gettext_noop("Go back"),
    gettext_noop("Previous"),
    gettext_noop("Next"),
    gettext_noop("Search apps and models..."),
    gettext_noop("General"),
    gettext_noop("Light"),
    gettext_noop("Dark"),
    gettext_noop("System"),
    gettext_noop("Return to site"),
    gettext_noop("Add row"),
    gettext_noop("Date"),
    gettext_noop("Select currency"),
)

UNFOLD_PLURALS = (ngettext_lazy("\n                Found %(counter)s result in %(time)s seconds\n            ", "\n                Found %(counter)s results in %(time)s seconds\n            ", "counter"),)
