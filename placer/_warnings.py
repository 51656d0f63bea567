"""placer's own warning category (tests turn it into errors)."""


class PlacerWarning(UserWarning):
    pass
