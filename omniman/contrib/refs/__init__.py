"""Locators with scoped uniqueness: table numbers, marketplace order ids, daily pickup tickets."""
