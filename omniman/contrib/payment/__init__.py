"""omniman.contrib.payment"""
