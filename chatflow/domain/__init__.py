"""Domain: the words chatflow speaks in (messages, numbers, conversation ids, errors).

Standard library and phonenumbers only; every other layer builds on this one.
"""
