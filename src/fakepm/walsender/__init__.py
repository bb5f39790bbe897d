"""walsender"""
