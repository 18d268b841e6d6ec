"""The API contract: marshmallow schemas shared by the HTTP layer and the dataset loader."""
