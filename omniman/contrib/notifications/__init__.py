"""omniman.contrib.notifications"""
