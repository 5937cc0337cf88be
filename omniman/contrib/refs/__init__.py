"""omniman.contrib.refs"""
