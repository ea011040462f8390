"""An internal package that is not on any index, shipped through vendor/."""
