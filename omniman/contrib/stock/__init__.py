"""omniman.contrib.stock"""
