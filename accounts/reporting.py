"""Error reports that never show credentials, whatever a stack frame or a form field calls them."""

from __future__ import annotations

import re
from typing import Any

from django.http import HttpRequest, QueryDict
from django.views.debug import SafeExceptionReporterFilter

# Names of variables, POST fields and settings that may hold a credential or its plaintext.
SENSITIVE = re.compile(
    r"API|KEY|SECRET|PASS|TOKEN|SIGNATURE|CREDENTIAL|CLEANED_DATA|AUTH|COOKIE|SESSION|HEADERS|PREHASH",
    flags=re.IGNORECASE,
)


class CredentialSafeExceptionReporterFilter(SafeExceptionReporterFilter):
    """Django's filter, always on, extended to frame variables and POST fields with credential-like names."""

    hidden_settings = SENSITIVE

    def is_active(self, request: HttpRequest | None) -> bool:
        return True

    def get_post_parameters(self, request: HttpRequest | None) -> QueryDict | dict[str, Any]:
        if request is None:
            return {}
        cleansed = request.POST.copy()
        for name in cleansed:
            if SENSITIVE.search(name):
                cleansed[name] = self.cleansed_substitute
        return cleansed

    def get_traceback_frame_variables(self, request: HttpRequest | None, tb_frame: Any) -> Any:  # noqa: ANN401
        """Hide variables with a sensitive name, and any variable whose value shows a secret the request posted."""
        posted = _posted_secrets(request)
        cleansed = []
        for name, value in super().get_traceback_frame_variables(request, tb_frame):
            if SENSITIVE.search(str(name)) or (posted and any(secret in repr(value) for secret in posted)):
                value = self.cleansed_substitute
            cleansed.append((name, value))
        return cleansed


def _posted_secrets(request: HttpRequest | None) -> list[str]:
    if request is None:
        return []
    return [v for k, v in request.POST.items() if SENSITIVE.search(k) and isinstance(v, str) and len(v) >= 4]
