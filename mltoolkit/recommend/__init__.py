"""Collaborative filtering on user,item,rating data with implicit."""
