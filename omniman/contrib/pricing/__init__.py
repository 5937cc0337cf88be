"""omniman.contrib.pricing"""
